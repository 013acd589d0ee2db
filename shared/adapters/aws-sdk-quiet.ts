/**
 * Imported before the AWS SDK's clients are built: the SDK warns on every start under Node < 22
 * that its future versions will need Node 22. This service supports Node 20 (package.json
 * engines, pinned SDK versions), so the notice is noise in every log; an explicit setting wins.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
