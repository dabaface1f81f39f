<?php
// The smsxml SOAP bridge from PHP's SoapClient (php-soap): send, poll the status, handle a fault.
//
//   php php_soapclient.php 'http://127.0.0.1:8080/soap?wsdl' 306912345678
//       the document/literal WSDL: one array of named parameters per call;
//   php php_soapclient.php --rpc 'http://127.0.0.1:8080/api/soap/sms.wsdl' 306912345678
//       the rpc/literal WSDL, for code written against the real iSMS, which calls
//       $client->send($user, $pass, $from, $to, $text, 'UTF-8', false) positionally,
//       with the schedule and the delivery-report URL as two more arguments if it likes.
// (Debian 12: apt-get install php-cli php-soap; see docs/clients.md.)
//
// Prints one line per fact: id=..., status <mobile>=<status>, fault=..., code=...,
// sender_fault=..., sender_code=...; with --rpc also scheduled_id=..., scheduled_status=...

$args = array_slice($argv, 1);
$rpc = ($args[0] ?? '') === '--rpc';
if ($rpc) {
    array_shift($args);
}
$wsdl = $args[0] ?? (getenv('SMSXML_WSDL') ?: 'http://127.0.0.1:8080/soap?wsdl');
$mobiles = array_slice($args, 1) ?: ['306912345678'];
$username = getenv('SMSXML_USERNAME') ?: 'demo';
$password = getenv('SMSXML_PASSWORD') ?: 'demo';

$client = new SoapClient($wsdl, [
    'exceptions' => true,
    'cache_wsdl' => WSDL_CACHE_NONE,
    'connection_timeout' => 10,
]);

// The two bindings carry the same request; only the PHP call differs.
function send_message(SoapClient $client, bool $rpc, string $user, string $pass, array $mobiles, string $text, string $from = 'smsxml'): string
{
    $to = (object) ['recipients' => $mobiles];
    if ($rpc) {
        return $client->send($user, $pass, $from, $to, $text, 'UTF-8', false);
    }
    $answer = $client->send([
        'username' => $user,
        'password' => $pass,
        'from' => $from,
        'to' => $to,
        'message' => $text,
        'coding' => 'UTF-8',
        'flash' => false,
    ]);
    return $answer->id;
}

function query_status(SoapClient $client, bool $rpc, string $user, string $pass, string $id, string $mobile): string
{
    if ($rpc) {
        return $client->query($user, $pass, $id, $mobile);
    }
    return $client->query([
        'username' => $user,
        'password' => $pass,
        'message_id' => $id,
        'mobile' => $mobile,
    ])->status;
}

$id = send_message($client, $rpc, $username, $password, $mobiles, 'Γειά σου από την PHP');
echo "id=$id\n";

// Queued, then Pending, then Delivered or Failed: poll, but not forever.
$statuses = [];
$waiting = $mobiles;
$deadline = microtime(true) + 60;
while ($waiting && microtime(true) < $deadline) {
    foreach ($waiting as $i => $mobile) {
        $statuses[$mobile] = query_status($client, $rpc, $username, $password, $id, $mobile);
        if (in_array($statuses[$mobile], ['Delivered', 'Failed'], true)) {
            unset($waiting[$i]);
        }
    }
    if ($waiting) {
        usleep(250000);
    }
}
foreach ($mobiles as $mobile) {
    echo "status $mobile=$statuses[$mobile]\n";
}

// Every refusal is a SoapFault: the faultstring, and a stable code in its detail.
try {
    send_message($client, $rpc, $username, $password . '-wrong', $mobiles, 'Hello');
    echo "fault=none\n";
} catch (SoapFault $fault) {
    echo "fault={$fault->getMessage()}\n";
    echo "code={$fault->detail->smsFault->code}\n";
}

// A sender the service refuses: the same SoapFault, another code.
try {
    send_message($client, $rpc, $username, $password, $mobiles, 'Hello', 'Not a sender!');
    echo "sender_fault=none\n";
} catch (SoapFault $fault) {
    echo "sender_fault={$fault->getMessage()}\n";
    echo "sender_code={$fault->detail->smsFault->code}\n";
}

// The real iSMS's last two parameters, positionally: a schedule in strtotime() words and
// the URL its delivery reports go to. Sent tomorrow, so it is still Queued today.
if ($rpc) {
    $to = (object) ['recipients' => $mobiles];
    $id = $client->send($username, $password, 'smsxml', $to, 'Tomorrow', 'GSM', false,
                        '+1 day', 'http://127.0.0.1:9/dlr?ref=php');
    echo "scheduled_id=$id\n";
    echo "scheduled_status=" . $client->query($username, $password, $id, $mobiles[0]) . "\n";
}
