"""The event stores (backends), one module or package each; ``sysevents.connect`` picks one by URL.

Nothing is imported here, so that a store's driver is imported only by whoever picks it.
"""
