"""Infrastructure tests: template.yaml and samconfig.toml."""
