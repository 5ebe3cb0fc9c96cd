package smsplugin

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// go-plugin's own services, as its host calls them. Their messages are go-plugin's internal
// plugin.Empty and google.protobuf.Empty, both without fields, so emptypb.Empty reads and
// writes them byte for byte; the services are registered by hand because go-plugin's generated
// code is internal. Reflection still describes them: go-plugin, linked into every binary that
// imports this package, registers their descriptors.
const (
	controllerService = "plugin.GRPCController"
	stdioService      = "plugin.GRPCStdio"
)

// pluginControl is what the hand-registered services act on: the plugin's shutdown switch.
type pluginControl interface {
	// requestShutdown starts a graceful shutdown; it returns at once.
	requestShutdown()
	// stopping is closed once a shutdown has started, for any reason.
	stopping() <-chan struct{}
}

// registerGoPluginServices registers plugin.GRPCController and plugin.GRPCStdio on s.
//
// GRPCController/Shutdown, which go-plugin's host calls from Kill, starts the plugin's graceful
// shutdown and answers at once (go-plugin's own plugin stops its server inside the call, which
// cuts the RPCs in flight; here they finish). GRPCStdio/StreamStdio is the stream on which a
// go-plugin plugin forwards what it writes to stdout and stderr; this plugin writes nothing
// there (its logs are JSON lines on its real stderr, which the host reads), so the stream stays
// open and empty until the plugin shuts down or the host goes. go-plugin's GRPCBroker is not
// served: the contract has no callbacks to broker, and go-plugin's host ends its broker stream
// quietly when the service is missing.
func registerGoPluginServices(s *grpc.Server, ctl pluginControl) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: controllerService,
		HandlerType: (*pluginControl)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Shutdown", Handler: shutdownHandler}},
		Metadata:    "plugin/grpc_controller.proto",
	}, ctl)
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: stdioService,
		HandlerType: (*pluginControl)(nil),
		Streams:     []grpc.StreamDesc{{StreamName: "StreamStdio", Handler: streamStdioHandler, ServerStreams: true}},
		Metadata:    "plugin/grpc_stdio.proto",
	}, ctl)
}

// shutdownHandler serves GRPCController/Shutdown(Empty) returns (Empty).
func shutdownHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := &emptypb.Empty{}
	if err := dec(in); err != nil {
		return nil, err
	}
	handle := func(context.Context, any) (any, error) {
		srv.(pluginControl).requestShutdown()
		return &emptypb.Empty{}, nil
	}
	if interceptor == nil {
		return handle(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + controllerService + "/Shutdown"}, handle)
}

// streamStdioHandler serves GRPCStdio/StreamStdio(google.protobuf.Empty) returns (stream
// StdioData): it reads the request and sends nothing until the plugin stops or the host leaves.
func streamStdioHandler(srv any, stream grpc.ServerStream) error {
	if err := stream.RecvMsg(&emptypb.Empty{}); err != nil {
		return err
	}
	select {
	case <-srv.(pluginControl).stopping():
	case <-stream.Context().Done():
	}
	return nil
}
