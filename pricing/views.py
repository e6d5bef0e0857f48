"""Pages of the pricing app."""
