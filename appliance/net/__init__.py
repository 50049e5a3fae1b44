"""net: talking to peers (the JSON client over the pooled HTTP/1.1 client, node TLS)."""
