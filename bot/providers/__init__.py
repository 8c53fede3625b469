"""Image providers behind one ``Provider`` protocol, and the router that fails over between them."""
