"""Domain modules: the logic routers share with each other (and with activities), so that routers stay thin and
never import one another."""
