"""Product recommendations from purchases, views and conversations."""
