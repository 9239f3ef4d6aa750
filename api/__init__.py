"""The HTTP layer: authentication, audit and case search over ``reunite.pipeline``.

Thin by design: routes stay short because dependencies carry auth, sessions and audit. Built in
the API issue; nothing here yet.
"""
