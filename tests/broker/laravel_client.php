<?php
// Laravel's side of the broker, as central speaks it: Illuminate's HTTP client (Guzzle
// underneath) over the broker's Unix socket. Exits 0 when every check holds; prints
// each failure and exits 1 otherwise.
//   php laravel_client.php /path/to/broker.sock
require '/usr/share/php/Illuminate/autoload.php';
require '/usr/share/php/GuzzleHttp/autoload.php';

use Illuminate\Http\Client\Factory;

$socket = $argv[1] ?? '';
$failures = 0;

function check(bool $ok, string $what, $got = null): void {
    global $failures;
    if ($ok) {
        echo "ok: $what\n";
        return;
    }
    $failures++;
    echo "FAILED: $what; got " . var_export($got, true) . "\n";
}

function broker(string $socket) {
    return (new Factory())
        ->withOptions(['curl' => [CURLOPT_UNIX_SOCKET_PATH => $socket]])
        ->baseUrl('http://broker')
        ->acceptJson()
        ->timeout(40);
}

$health = broker($socket)->get('/v1/health');
check($health->status() === 200 && $health->json('ok') === true, 'health', $health->body());
check($health->json('hosts') === 2, 'two hosts connected', $health->body());

// A command to one host: the answer comes back on the same request.
$pull = broker($socket)->post('/v1/coold/dispatch', [
    'host_id' => 'web-1',
    'request_id' => 'laravel-pull-1',
    'command' => ['type' => 'images.pull', 'reference' => 'docker.io/library/nginx:alpine'],
]);
check($pull->successful(), 'images.pull dispatched', $pull->body());
check($pull->json('request_id') === 'laravel-pull-1' && $pull->json('status') === 'ok', 'ok envelope', $pull->json());
check($pull->json('data.verb') === 'images_pull', 'the host ran images.pull', $pull->json());

$allow = broker($socket)->post('/v1/coold/dispatch', [
    'host_id' => 'web-1',
    'request_id' => 'laravel-allow-1',
    'command' => ['type' => 'firewall.allow', 'namespace' => 'default', 'src' => '10.210.5.2',
                  'dst' => '10.210.6.3', 'proto' => 'tcp', 'port' => 80],
]);
check($allow->json('data.verb') === 'firewall_allow', 'firewall.allow dispatched', $allow->body());

$missing = broker($socket)->post('/v1/coold/dispatch', [
    'host_id' => 'nowhere',
    'request_id' => 'laravel-missing-1',
    'command' => ['type' => 'host.info'],
]);
check($missing->status() === 404 && $missing->json('status') === 'error' && $missing->json('code') === 404,
      'unknown host is 404 with an error envelope', $missing->body());

$bad = broker($socket)->post('/v1/coold/dispatch', [
    'host_id' => 'web-1',
    'request_id' => 'laravel-bad-1',
    'command' => ['type' => 'containers.teleport'],
]);
check($bad->status() === 400 && str_contains($bad->json('message'), 'containers.teleport'),
      'unknown type is 400 naming it', $bad->body());

// A build: accepted at once, its result long-polled.
$build = broker($socket)->post('/v1/build/dispatch', [
    'request_id' => 'laravel-build-1',
    'command' => ['type' => 'static_build', 'repo_url' => 'https://example.com/site.git',
                  'git_ref' => 'main', 'target_image' => 'localhost/site:1'],
]);
check($build->status() === 202 && $build->json('request_id') === 'laravel-build-1', 'build accepted', $build->body());
$result = broker($socket)->get('/v1/build/result/laravel-build-1', ['timeout_ms' => 20000]);
check($result->status() === 200 && $result->json('status') === 'ok', 'build result long-polled', $result->body());
check($result->json('registry_ref') === 'localhost/site:1' && str_starts_with($result->json('digest'), 'sha256:')
      && is_int($result->json('duration_ms')), 'build result fields', $result->json());
$again = broker($socket)->get('/v1/build/result/laravel-build-1');
check($again->json() == $result->json(), 'a second poller gets the same result', $again->body());

// A build cancelled while it runs.
$second = broker($socket)->post('/v1/build/dispatch', [
    'host_id' => 'builder-1',
    'request_id' => 'laravel-build-2',
    'command' => ['type' => 'dockerfile_build', 'repo_url' => 'https://example.com/app.git',
                  'git_ref' => 'v2', 'target_image' => 'localhost/app:2'],
]);
check($second->status() === 202, 'second build accepted', $second->body());
$cancel = broker($socket)->post('/v1/build/laravel-build-2/cancel');
check($cancel->status() === 204, 'cancel is 204', $cancel->status());
$unknown = broker($socket)->post('/v1/build/laravel-build-9/cancel');
check($unknown->status() === 404, 'cancel of an unknown build is 404', $unknown->status());

exit($failures === 0 ? 0 : 1);
