"""msgspec Structs for every request and response body, and the OpenAPI builder that reads them."""
