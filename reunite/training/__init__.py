"""Training re-ID networks on Market-1501-layout folders (``reunite train``)."""
