"""OpenAI's Vector Stores over searchsvc's collections: a vector store is a collection (its id the collection's
name), its files are uploaded files ingested by ingestion jobs, its search is searchsvc's hybrid search."""
