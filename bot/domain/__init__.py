"""Values and rules of the product: requests, jobs, settings, limits, safety, the prompt filter and the model catalog; imports no other layer."""
