"""Market-data feeds: loaders for vendor files and live sources."""
