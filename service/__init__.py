"""farview service package."""
