"""farview streaming package."""
