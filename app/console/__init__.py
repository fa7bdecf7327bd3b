"""The reference console (issue 16, item 6): a small web app at `/console` built only on the
public API, as a frontend team would build one. Plain ES modules and one stylesheet under
`static/`, no build step, no inline script or style, so it runs under a strict
Content-Security-Policy and needs no Node."""
