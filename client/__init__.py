"""farview client package."""
