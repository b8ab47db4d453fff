"""Model providers behind one async interface, the model registry and the client."""
