"""What every layer stands on: settings, the error hierarchy, logs and metrics, outbound
mail, and the shape vocabulary of JSON bodies.

Imports nothing else from chalicelib: every other package may import this one.
"""
