// Starts Swagger UI on reservd's /api page (docs/api.html). A file rather
// than an inline script so that the page's Content-Security-Policy can
// forbid inline scripts.
'use strict';
window.addEventListener('DOMContentLoaded', function () {
  window.ui = SwaggerUIBundle({
    // Relative to the page (/api), so it is this server's document; the
    // document's server URL is "/", so "Try it out" calls this server too.
    url: 'api/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    tryItOutEnabled: false,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    // The validator badge would send the document to a third-party site.
    validatorUrl: null,
  });
});
