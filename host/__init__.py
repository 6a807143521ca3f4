"""farview host package."""
