<?php
// Front controller of the demo PHP app: every request comes through here (nginx try_files).
declare(strict_types=1);
require __DIR__ . '/../src/bootstrap.php';

header('Content-Type: application/json');
$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);

try {
    if ($path === '/health') {
        echo json_encode(['ok' => true]);
    } elseif ($path === '/enqueue') {
        $priority = in_array($_GET['priority'] ?? '', ['high', 'default', 'low'], true) ? $_GET['priority'] : 'default';
        $job = ['id' => bin2hex(random_bytes(8)), 'kind' => 'php', 'payload' => (string) ($_GET['payload'] ?? '')];
        cache()->lPush("jobs:php:$priority", json_encode($job));
        echo json_encode(['queued' => $job['id'], 'queue' => "jobs:php:$priority"]);
    } elseif ($path === '/job') {
        $job = db_read('ro', function (PDO $db): mixed {
            $stmt = $db->prepare('select job_id, kind, payload from jobs_done where job_id = ?');
            $stmt->execute([(string) ($_GET['id'] ?? '')]);
            return $stmt->fetch(PDO::FETCH_ASSOC) ?: null;
        });
        echo json_encode(['job' => $job]);
    } else {
        $cached = cache()->get('demo:greeting');
        if ($cached === false) {
            $cached = 'cached at ' . date(DATE_ATOM);
            cache()->setEx('demo:greeting', 60, $cached);
        }
        $rows = db_read('ro', fn (PDO $db) => $db->query('select id, name from items order by id limit 5')
            ->fetchAll(PDO::FETCH_ASSOC));
        $primary = db_read('rw', fn (PDO $db) => $db->query('select pg_is_in_recovery() as standby')->fetchColumn());
        echo json_encode([
            'app' => 'php', 'host' => gethostname(), 'rows' => $rows, 'redis' => $cached,
            'rw_is_standby' => (bool) $primary,
        ]);
    }
} catch (Throwable $e) {
    http_response_code(500);
    error_log('demo app: ' . $e->getMessage());
    echo json_encode(['error' => 'internal error']);
}
