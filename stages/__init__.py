"""The staged-screening method: campaigns, designs, statistics, rules, decisions, executors."""
