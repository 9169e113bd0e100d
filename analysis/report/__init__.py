"""The HTML report of a run (``stcp-analyze RUN_DIR --html``): page.py
writes the page, panels.py and panels_more.py make its bokeh panels,
decimate.py keeps each panel to a bounded number of points."""
