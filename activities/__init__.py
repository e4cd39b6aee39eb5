"""Every side effect: Postgres, HTTP clients, SMTP, PDFs. One class per resource, holding its client.

This __init__ imports nothing on purpose: the list of every activity is activities/registry.py."""
