"""The web admin under /admin/: server-rendered pages (Jinja2, autoescaped) over the same
read models and commands as the REST API, with one vendored htmx file for live parts."""
