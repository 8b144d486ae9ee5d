"""The `totesys` template: a simulated back-office database of a tote-bag wholesaler."""
