"""Assets of the ``dictionary`` group: ``schema_dictionary``."""
