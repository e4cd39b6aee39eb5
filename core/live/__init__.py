"""Live updates: the events of the `live_updates` channel, pushed to the WebSockets of this process's users."""

CHANNEL = "live_updates"
