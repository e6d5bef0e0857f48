"""Models of the pricing app."""
