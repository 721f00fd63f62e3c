"""The HTTP edge: request bodies and their specs, responses and problems, the middleware
every response passes, API Gateway's own answers, the OpenAPI document and the web page.

May import the services' types and everything below them; no service imports the edge.
"""
