/* GET home page and the status page. */
module.exports = function index(req, res) {
  if (req.url === '/' || req.url === '/status') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ title: 'genapp', status: 'up' }));
    return true;
  }
  return false;
};
