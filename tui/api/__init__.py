"""The client layer: endpoints, jobs, errors and the HTTP client. Imports no Textual."""
