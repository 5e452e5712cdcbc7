# Empty on purpose: see __init__.py.
