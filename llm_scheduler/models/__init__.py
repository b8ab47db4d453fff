"""Model providers behind one async interface, the model registry and the client.

`providers` maps provider names to adapter classes, the built-in ones and those registered with
`register_provider`; `registry` maps model keys to entries; `client` sends requests.
"""
