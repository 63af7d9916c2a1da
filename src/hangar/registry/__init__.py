"""An asyncio client for the OCI distribution API. It knows nothing of signatures."""
