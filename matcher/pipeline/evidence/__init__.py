"""The evidence a pair comparison gathers, one module per kind: text, appearance, colour, geometry."""
