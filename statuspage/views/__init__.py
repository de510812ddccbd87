"""HTTP handlers, one module per audience: public pages, the JSON API, feeds, admin, hooks."""
