"""The SDK adapters: the only code that knows an SDK's internals (see ``adapter``)."""
