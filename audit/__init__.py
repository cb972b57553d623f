"""Re-derivation, cost accounting, counterfactuals, reports and reviewer bundles."""
