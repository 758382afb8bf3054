// The interactive API reference at /api/docs: Swagger UI over /api/openapi.json, the document
// generated from the handlers. "Try it out" sends requests from this browser; paste an access
// token from POST /api/auth/login (or a producer key, for ingest) into Authorize.
window.SwaggerUIBundle({
  url: '/api/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  tryItOutEnabled: false,
  persistAuthorization: false,
});
