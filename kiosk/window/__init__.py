"""The kiosk's own window (pywebview; the only `import webview`), its HTTPS server and certificate."""
