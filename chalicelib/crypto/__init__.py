"""Secrets and proofs: password hashing and policy, access tokens, the signing key ring
and its rotation, and the WebAuthn credential shapes and ceremonies.

May import ``platform`` only; never the store, the services or the edge.
"""
