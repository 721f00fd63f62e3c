"""The OpenID Provider: OAuth 2.0 clients, and (as it lands) the authorization, token,
userinfo, revocation, introspection and logout endpoints other apps sign in through.

May import the account services and everything below them; neither the edge nor the
account services import it. authlib is imported only inside it, on the OAuth routes.
"""
