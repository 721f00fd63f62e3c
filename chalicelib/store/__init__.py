"""The one DynamoDB table: the plumbing (``dynamo``), the item layout (``items``) and one
module per record family (users in ``table``, sessions, security records, passkeys, to-dos).

May import ``platform`` only; never the services, crypto or the edge.
"""
