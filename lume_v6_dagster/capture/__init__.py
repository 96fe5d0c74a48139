"""Reading and validating capture folders (SPEC section 2). Raw files are opened read-only."""
