// Laid out as express-generator lays out an app (bin/www starts it through `npm start`), with Node's own http
// module in place of express so that it needs no dependency.
var indexRouter = require('./routes/index');

module.exports = function app(req, res) {
  if (!indexRouter(req, res)) {
    res.statusCode = 404;
    res.end('Not Found');
  }
};
