"""OAuth client records: what the operator registers (``scripts.admin clients``).

All clients share one partition (``items.CLIENTS_PARTITION``), so listing them is one
Query and reading one at the token endpoint is one GetItem. A registration never
overwrites an existing client, and a secret is replaced only on a client that exists.
"""

from __future__ import annotations

from chalicelib.store import items
from chalicelib.store.dynamo import Table, conditional
from chalicelib.store.items import ClientRecord


class ClientRecords(Table):
    def put_client(self, client: ClientRecord) -> bool:
        """Store a new client; False if one with its id exists already."""
        written = conditional(
            lambda: self._client.put_item(
                TableName=self.table_name,
                Item={**items.client_key(client.id), **items.encode(client, "client")},
                ConditionExpression="attribute_not_exists(pk)",
            )
        )
        return written is not None

    def get_client(self, client_id: str) -> ClientRecord | None:
        item = self._get(items.client_key(client_id))
        return items.decode(ClientRecord, item) if item else None

    def list_clients(self) -> list[ClientRecord]:
        found = self._query_partition(items.CLIENTS_PARTITION, "CLIENT#")
        return [items.decode(ClientRecord, item) for item in found]

    def delete_client(self, client_id: str) -> bool:
        """Delete the client; False if there was none."""
        deleted = conditional(
            lambda: self._client.delete_item(
                TableName=self.table_name,
                Key=items.client_key(client_id),
                ConditionExpression="attribute_exists(pk)",
            )
        )
        return deleted is not None

    def set_client_secret(self, client_id: str, secret_hash: str, at: int) -> bool:
        """Replace a confidential client's secret hash; False if there is no such client
        or it is public (a public client has no secret to rotate)."""
        written = conditional(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key=items.client_key(client_id),
                UpdateExpression="SET secret_hash = :hash, secret_rotated_at = :at",
                ConditionExpression="attribute_exists(pk) AND #public = :false",
                ExpressionAttributeNames={"#public": "public"},
                ExpressionAttributeValues={
                    ":hash": {"S": secret_hash},
                    ":at": {"N": str(at)},
                    ":false": {"BOOL": False},
                },
            )
        )
        return written is not None
