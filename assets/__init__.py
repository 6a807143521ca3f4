"""farview assets package."""
