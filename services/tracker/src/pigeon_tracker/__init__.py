"""Public tracking endpoints: open pixel, click redirect, unsubscribe."""
