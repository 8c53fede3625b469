"""Platform glue: each adapter turns platform events into core requests and core results into messages."""
